"""The tutorial's app (docs/tutorial.md): expense reports that wait for a manager's approval."""
