"""The settlement cycle on Temporal: close the period, reconcile, net, wait for the operator's
approval (reminding when late), publish the transfer instructions, wait for confirmation."""
