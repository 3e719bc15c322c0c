//! AWS wire protocols: recognise awsJson1.0/1.1, awsQuery and restJson1 requests, route them to (service, operation), render responses and error envelopes.
