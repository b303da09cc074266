"""edgeprune.budget"""
