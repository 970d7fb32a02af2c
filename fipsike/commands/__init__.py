"""One module per CLI verb family; each defines `register(subparsers)`."""
