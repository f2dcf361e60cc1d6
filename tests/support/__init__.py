"""Helpers any test folder may import (no fixtures, no pytest plugins)."""
