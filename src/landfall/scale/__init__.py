"""Scale-out on existing engines: torchrun/accelerate launchers around the one training entry
point, Ray Data and Ray Serve adapters around the same predictors and service apps."""
