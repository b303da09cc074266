"""edgeprune.methods"""
