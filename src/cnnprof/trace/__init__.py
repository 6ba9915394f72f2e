"""One forward pass, observed: module calls (tree, shapes) and ops (costs)."""
