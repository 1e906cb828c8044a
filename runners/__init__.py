"""hookbuild's run side: the queue, the workers, build records and their logs, the CLI."""
