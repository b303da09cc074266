"""edgeprune.data"""
