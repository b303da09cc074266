"""edgeprune.models"""
