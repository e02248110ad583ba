"""The HTCondor pool adapter: idle jobs, csctl's startds, draining (``htcondor.py``), and
the probe jobs of ``csctl image-test`` (``probes.py``). Its protocol is ``csctl.model.Pool``."""
