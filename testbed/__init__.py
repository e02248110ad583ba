"""csctl's test bed: real peers on loopback (HTCondor pool, EC2 and Nova API servers)."""
