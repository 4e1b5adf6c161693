"""Runs the python statement given as the first argument (used by tests to seed data with boto3)."""
import sys
exec(sys.argv[1])
