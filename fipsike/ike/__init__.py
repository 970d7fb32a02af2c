"""fipsike/ike"""
