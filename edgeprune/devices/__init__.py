"""edgeprune.devices"""
