"""The names compiled code and the runtime share (without the compiler, so that a process
that only reads stored state, as the command line does, never imports libcst)."""

#: Every name the compiler introduces starts with this prefix; user code may not use it.
RESERVED_PREFIX = "_durable_"
FRAME = RESERVED_PREFIX + "f"
RESUME = RESERVED_PREFIX + "rp"
PAUSE = RESERVED_PREFIX + "pause"  # marker call left by normalize for a wait point
STEP = RESERVED_PREFIX + "step"  # the awaitable of the checkpoint being run or resumed
