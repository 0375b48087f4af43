"""The one module that knows about distribution: where a chunk's images run, and how.

The work is data-parallel over images: each replica takes its share of a chunk's images, runs
the same step (the backend's, unchanged), and the results come back to the host in image
order. A chunk whose size does not divide by the number of replicas is padded with copies of
its last image, whose results are dropped: no image is ever left out.

- `Placement` (strategy "default"): one device, the step as compiled.
- `TensorFlowPlacement`: a `tf.distribute` strategy ("mirrored": `MirroredStrategy` over the
  local GPUs or the named devices; "multi_worker": `MultiWorkerMirroredStrategy` over the
  cluster in TF_CONFIG; "tpu": `TPUStrategy` from a `TPUClusterResolver`). Per-replica batches
  are made with `experimental_distribute_values_from_function`, the step runs through
  `strategy.run`, and `strategy.gather` brings the results back, in replica order.
- `JaxPlacement` ("mirrored" under Keras' JAX backend): the batch axis sharded over the local
  devices with `jax.sharding`, the model's variables replicated; `jax.jit` partitions the step.
"""

import contextlib
import json
import os
import socket
import sys

import numpy as np

from keras_filters import errors

# Keras is imported inside the functions: importing it starts TensorFlow's runtime, after which
# the host CPU can no longer be split into logical devices (`split_host_cpu`).


class Placement:
    """One device: the step as the backend compiled it, arrays as they are."""

    num_replicas = 1
    is_chief = True

    def scope(self):
        """A context in which the model's variables are created (nothing to do here)."""
        return contextlib.nullcontext()

    def padded_size(self, count: int) -> int:
        """How many images a chunk of `count` runs as: a multiple of the replicas."""
        return -(-count // self.num_replicas) * self.num_replicas

    def wrap(self, step):
        """The step that takes and returns placed values."""
        return step

    def put(self, array):
        """A host array (batch axis first) placed for the step."""
        from keras import ops

        return ops.convert_to_tensor(array)

    def fetch(self, value) -> np.ndarray:
        """A placed value back on the host, in image order."""
        from keras import ops

        return np.asarray(ops.convert_to_numpy(value))


class TensorFlowPlacement(Placement):
    """A `tf.distribute` strategy: per-replica batches, `strategy.run`, `strategy.gather`.

    Args:
        strategy: A `tf.distribute.Strategy`.
    """

    def __init__(self, strategy):
        import tensorflow as tf

        self.tf = tf
        self.strategy = strategy
        self.num_replicas = strategy.num_replicas_in_sync
        resolver = getattr(strategy, "cluster_resolver", None)
        task_type = getattr(resolver, "task_type", None)
        task_id = getattr(resolver, "task_id", None)
        # A cluster's chief is "chief" 0, or "worker" 0 where there is no chief.
        self.is_chief = task_type in (None, "chief") or (task_type == "worker" and task_id == 0)

    def scope(self):
        return self.strategy.scope()

    def wrap(self, step):
        tf, strategy = self.tf, self.strategy
        compiled_step = getattr(step, "python_function", step)

        def replica_step(params, state, targets, step_size, draws):
            params, state, losses, finite = compiled_step(params, state, targets, step_size, draws)
            # The collectives that gather the results take numbers, not booleans.
            return params, state, losses, tf.cast(finite, tf.int32)

        @tf.function
        def distributed_step(params, state, targets, step_size, draws):
            return strategy.run(replica_step, args=(params, state, targets, step_size, draws))

        return distributed_step

    def put(self, array):
        array = np.asarray(array)
        if array.ndim == 0:
            return self.tf.constant(array)
        share = len(array) // self.num_replicas

        local_devices = self.strategy.extended.worker_devices

        def replica_value(context):
            replica = context.replica_id_in_sync_group
            start = replica * share
            # The function runs on the host: put each share on its replica's device.
            with self.tf.device(local_devices[replica % len(local_devices)]):
                return self.tf.constant(array[start : start + share])

        return self.strategy.experimental_distribute_values_from_function(replica_value)

    def fetch(self, value) -> np.ndarray:
        # One local replica returns a plain tensor; gather still collects every worker's.
        return self.strategy.gather(value, axis=0).numpy()


class JaxPlacement(Placement):
    """The batch axis sharded over the local JAX devices; everything else replicated.

    Args:
        devices: The JAX devices. Defaults to every local device.
    """

    def __init__(self, devices=None):
        import jax
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        self.jax = jax
        devices = list(devices or jax.local_devices())
        self.num_replicas = len(devices)
        mesh = Mesh(np.array(devices), ("batch",))
        self.batch_sharding = NamedSharding(mesh, PartitionSpec("batch"))
        self.replicated = NamedSharding(mesh, PartitionSpec())

    def wrap(self, step):
        return step  # jax.jit partitions the step along its inputs' sharding.

    def put(self, array):
        array = np.asarray(array)
        sharding = self.replicated if array.ndim == 0 else self.batch_sharding
        return self.jax.device_put(array, sharding)

    def replicate_variables(self, model) -> None:
        """Puts a copy of every variable of `model` on every device."""
        for variable in model.variables:
            variable.assign(self.jax.device_put(variable.value, self.replicated))


def split_host_cpu(count: int) -> None:
    """Splits the host CPU into `count` logical TensorFlow devices (before TensorFlow starts
    running anything), so that data parallelism can run, and be tested, on one CPU."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(cpu) or []
    if len(configured) >= count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )
    except RuntimeError as error:
        raise errors.UsageError(
            f"devices names {count} CPUs, but TensorFlow has started already and cannot split "
            f"the host CPU any more ({error}); run in a fresh process"
        ) from None


# Placements made so far: a second tf.distribute strategy in one process reuses the first's
# collective keys and breaks every later gather, so each kind is made once and reused.
_PLACEMENTS = {}


def make_placement(
    strategy: str, devices=(), tpu_address: str = "", backend: str | None = None
) -> Placement:
    """The placement for the `strategy` setting under the current Keras backend.

    Args:
        strategy: "default", "mirrored", "multi_worker" or "tpu".
        devices: For "mirrored": the device names; empty for every local GPU (JAX: every
            local device).
        tpu_address: For "tpu": the TPU's name or grpc:// address.
        backend: The Keras backend. Defaults to `keras.backend.backend()`.

    Raises:
        UsageError: For a strategy the backend cannot run, a device this machine does not
            have, a TF_CONFIG that is not a JSON object, or a TPU that is not there.
    """
    if strategy == "default":
        return Placement()
    key = (strategy, tuple(devices), tpu_address, backend)
    if key not in _PLACEMENTS:
        _PLACEMENTS[key] = _new_placement(strategy, devices, tpu_address, backend)
    return _PLACEMENTS[key]


def _new_placement(strategy: str, devices, tpu_address: str, backend) -> Placement:
    if backend is None:
        # Before Keras loads (which would start TensorFlow's runtime), its environment says.
        keras = sys.modules.get("keras")
        backend = (
            keras.backend.backend() if keras else os.environ.get("KERAS_BACKEND", "tensorflow")
        )
    if backend == "jax":
        if strategy != "mirrored":
            raise errors.UsageError(
                f"strategy={strategy!r} runs on the TensorFlow backend; under KERAS_BACKEND=jax "
                "use strategy='mirrored' (the local devices) or 'default'"
            )
        import jax

        by_name = {f"{device.platform}:{device.id}": device for device in jax.local_devices()}
        names = [name.lstrip("/").lower() for name in devices]
        _refuse_repeated_devices(devices, names)
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise errors.UsageError(
                f"devices={tuple(devices)!r} names {unknown[0]!r}, which JAX does not have; "
                "choose from: " + ", ".join(by_name)
            )
        return JaxPlacement([by_name[name] for name in names] or None)
    import tensorflow as tf

    if strategy == "mirrored":
        _refuse_repeated_devices(devices, [_tensorflow_device_key(tf, name) for name in devices])
        cpus = [name for name in devices if "cpu" in name.lower()]
        if len(cpus) > 1:
            split_host_cpu(len(cpus))
        _check_local_devices(tf, devices)
        return TensorFlowPlacement(tf.distribute.MirroredStrategy(list(devices) or None))
    if strategy == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise errors.UsageError(
                "strategy='multi_worker' reads the cluster from the TF_CONFIG environment "
                "variable, which is not set; set it on every worker, or use strategy='mirrored'"
            )
        try:
            cluster = json.loads(os.environ["TF_CONFIG"])
        except ValueError as error:
            raise errors.UsageError(
                f"strategy='multi_worker' cannot read the TF_CONFIG environment variable "
                f"({os.environ['TF_CONFIG'][:80]!r}): it is not JSON ({error}); set it to "
                '\'{"cluster": {"worker": ["host:port", …]}, "task": {"type": "worker", '
                '"index": 0}}\''
            ) from None
        if not isinstance(cluster, dict):
            raise errors.UsageError(
                f"strategy='multi_worker' reads a JSON object from TF_CONFIG, not "
                f'{os.environ["TF_CONFIG"][:80]!r}; set it to \'{{"cluster": …, "task": …}}\''
            )
        return TensorFlowPlacement(tf.distribute.MultiWorkerMirroredStrategy())
    return TensorFlowPlacement(_tpu_strategy(tf, tpu_address))


def _refuse_repeated_devices(devices, canonical) -> None:
    """Refuses a device that `devices` names twice, in any spelling.

    Args:
        devices: The device names as given.
        canonical: Each name in the backend's canonical form ('/cpu:0' and '/CPU:0' alike).

    Raises:
        UsageError: Naming the device and both spellings; MirroredStrategy would fail on an
            assertion, JAX's mesh on a repeated device.
    """
    for position, key in enumerate(canonical):
        if key in canonical[:position]:
            first, again = devices[canonical.index(key)], devices[position]
            spellings = f" (as {first!r} and {again!r})" if first != again else ""
            raise errors.UsageError(
                f"devices={tuple(devices)!r} names the device {first!r} twice{spellings}; "
                "list each device once"
            )


def _tensorflow_device_key(tf, name: str):
    """The device that `name` means to TensorFlow: '/cpu:0', '/CPU:0' and
    '/job:localhost/replica:0/task:0/device:CPU:0' alike; a name TensorFlow cannot read stays
    as it is (`_check_local_devices` refuses it)."""
    try:
        spec = tf.DeviceSpec.from_string(name)
    except ValueError:
        return name
    device_type = spec.device_type.upper() if spec.device_type else None
    job = None if spec.job == "localhost" else spec.job
    return (job, spec.replica or 0, spec.task or 0, device_type, spec.device_index or 0)


def _check_local_devices(tf, devices) -> None:
    """Refuses a name in `devices` that is not a device of this machine.

    MirroredStrategy would take it, and place the work on another device without a word.

    Raises:
        UsageError: Naming the device and the machine's devices.
    """
    local = {}
    for device in tf.config.list_logical_devices():
        spec = tf.DeviceSpec.from_string(device.name)
        local[(spec.device_type.upper(), spec.device_index)] = (
            f"/{spec.device_type.lower()}:{spec.device_index}"
        )
    for name in devices:
        try:
            spec = tf.DeviceSpec.from_string(name)
        except ValueError:
            spec = None
        if spec is not None and spec.job not in (None, "localhost"):
            continue  # A device of another task of a cluster: its own machine knows it.
        key = spec and spec.device_type and (spec.device_type.upper(), spec.device_index or 0)
        if key not in local:
            raise errors.UsageError(
                f"devices={tuple(devices)!r} names {name!r}, which is not a device of this "
                "machine; choose from: " + ", ".join(local.values())
            )


def _tpu_strategy(tf, tpu_address: str):
    """A `TPUStrategy` on the TPU at `tpu_address`.

    Raises:
        UsageError: Where no TPU answers, naming the tpu_address setting.
    """
    if tpu_address.startswith("grpc://"):
        # TensorFlow waits for ever on an address where nothing answers: ask first.
        host, _, port = tpu_address[len("grpc://") :].rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except (OSError, ValueError) as error:
            raise errors.UsageError(
                f"strategy='tpu' found no TPU at tpu_address={tpu_address!r} ({error}); set "
                "tpu_address to the TPU's name or grpc:// address, or use strategy='default'"
            ) from None
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or None)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except Exception as error:  # TensorFlow raises several types; all mean no TPU there.
        message = " ".join(str(error).split())[:200]
        raise errors.UsageError(
            f"strategy='tpu' found no TPU at tpu_address={tpu_address!r} ({message}); set "
            "tpu_address to the TPU's name or grpc:// address, or use strategy='default'"
        ) from None
