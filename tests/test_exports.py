"""The public surface is exactly `durable.__all__`, sorted and complete."""

import durable

DESIGN_NAMES = {
    "make_durable",
    "durable_execute",
    "durable_execute_async",
    "wait_for_event",
    "sleep",
    "PauseForEventException",
    "DurableProgram",
    "DurableRuntime",
    "CallStack",
    "FunctionCall",
    "CodeBlock",
    "OrchestrationBackend",
    "DurableBackend",
    "StateStore",
    "InMemoryStateStore",
    "DiskStateStore",
    "DurableAstTransformer",
    "transform_to_durable_ast",
    "CheckpointException",
    "AlreadyDurableException",
    "NoSourceCodeException",
}


def test_every_name_of_the_design_is_importable():
    assert DESIGN_NAMES <= set(durable.__all__)
    for name in DESIGN_NAMES:
        assert getattr(durable, name) is not None


def test_all_is_sorted_and_names_only_public_objects():
    assert durable.__all__ == sorted(durable.__all__)
    public = {name for name in vars(durable) if not name.startswith("_")}
    modules = {"cli", "runtime", "stores", "testing", "transform", "worker"}
    assert public - modules == set(durable.__all__)
