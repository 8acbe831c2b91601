"""The simulator core: numpy and networkx only, no gymnasium, torch or I/O."""
