"""edgeprune.report"""
