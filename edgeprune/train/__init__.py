"""edgeprune.train"""
