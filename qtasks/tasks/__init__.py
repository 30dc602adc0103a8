"""Tasks as the app sees them: options and registered specs, task objects, registration, the
``Task`` record, routers and chains."""
