"""fipsike/kernel"""
