"""ENAS's controller (Pham et al. 2018): an LSTM policy over a space's choices, and REINFORCE."""
