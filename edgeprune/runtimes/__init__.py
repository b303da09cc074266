"""edgeprune.runtimes"""
