"""B2B deals at a booth: request for quotation -> quotation -> purchase order with a deposit
held in escrow at the bank -> shipment (deposit posted) -> delivery (balance paid)."""
