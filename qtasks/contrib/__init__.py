"""Integrations with other projects (upstream's paths): Django task discovery, a Redis command queue."""
