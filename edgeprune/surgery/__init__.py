"""edgeprune.surgery"""
