"""hookbuild's build side: configuration, rules, plans and the build pipeline."""
