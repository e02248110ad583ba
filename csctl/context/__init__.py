"""Contextualization: the cloud-init payload that makes a booted VM join the pool."""
