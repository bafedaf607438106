"""The runtime: programs, frames and call stacks, running instances, events and timers."""
