"""edgeprune.targets"""
