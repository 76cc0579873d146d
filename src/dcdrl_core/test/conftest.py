"""This package's tests need no node runtime: protocol constants against the .msg text, argument checks."""
