"""edgeprune.cost"""
