"""Maintenance scripts: the sample corpus builder, the environment check and the reliability report."""
