"""spanledger.billing: the usage-event ledger, meters, prices, credits, invoices and the CLI."""
