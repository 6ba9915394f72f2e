"""One forward pass, two observers: module hooks (tree, shapes) and an op observer (costs)."""
