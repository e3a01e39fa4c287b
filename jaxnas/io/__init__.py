"""Files: checkpoints (:mod:`~jaxnas.io.checkpoint`) and run logs (:mod:`~jaxnas.io.runlog`)."""
