"""The public surface is exactly `durable.__all__`, sorted and complete."""

import durable
import durable.stores
import durable.worker

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
    for name in durable.__all__:
        getattr(durable, name)  # the names read on first use (CodeBlock) are there once read
    public = {name for name in vars(durable) if not name.startswith("_")}
    modules = {"cli", "runtime", "stores", "testing", "transform", "worker"}
    assert public - modules == set(durable.__all__)


#: Every public name of `durable`: one dropped or added is a change of the public API.
PUBLIC_NAMES = {
    *DESIGN_NAMES,
    "ArgumentsMismatchError",
    "Cancelled",
    "CorruptStateError",
    "Diagnostic",
    "DurableCompileError",
    "DurableError",
    "Event",
    "EventTimeoutError",
    "IncompatibleStateError",
    "InstanceBusyError",
    "InstanceEndedError",
    "InstanceHandle",
    "InstanceInfo",
    "InstanceSleeping",
    "JournalPolicy",
    "LeaseLostError",
    "NotApplied",
    "PostgresStateStore",
    "RetryPolicy",
    "SQLiteStateStore",
    "StateFormatError",
    "StateTooLargeError",
    "Stored",
    "Worker",
    "default_backend",
    "exclude_helpers",
    "first",
    "include_helpers",
    "list_instances",
    "prune_instances",
    "resumable",
    "step",
    "store_from_url",
}


def test_all_is_exactly_the_public_names():
    assert set(durable.__all__) == PUBLIC_NAMES
    assert len(durable.__all__) == len(PUBLIC_NAMES)  # none twice


def test_no_private_name_is_exported():
    assert [name for name in durable.__all__ if name.startswith("_")] == []


def test_what_the_guide_imports_from_submodules_is_the_same_object_in_durable():
    # docs/guide.md and the examples name the worker and the store URLs by their modules.
    assert durable.Worker is durable.worker.Worker
    assert durable.store_from_url is durable.stores.store_from_url
