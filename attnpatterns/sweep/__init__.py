"""The run's units as jobs (``attn sweep``): the plan (:mod:`~attnpatterns.sweep.plan`), running one job
(:mod:`~attnpatterns.sweep.jobs`), the executors (:mod:`~attnpatterns.sweep.executors`), the driver
(:mod:`~attnpatterns.sweep.driver`), one shared device's schedule (:mod:`~attnpatterns.sweep.device_plan`) and the
lock that works on a shared file system (:mod:`~attnpatterns.sweep.lease`)."""
