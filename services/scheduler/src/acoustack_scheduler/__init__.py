"""acoustack scheduler: the program, its schedule, deployments and the control API."""
