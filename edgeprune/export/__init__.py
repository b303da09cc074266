"""edgeprune.export"""
