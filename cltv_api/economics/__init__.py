"""Money figures built on the models: the quick CLTV calculator, cost of churn, business cases."""
