"""A local CRM sandbox: Salesforce REST/Bulk 2.0 and HubSpot CRM v3 over HTTPS on 127.0.0.1.

It serves a synthetic world through the vendors' wire protocols so the real client libraries
(simple-salesforce, hubspot-api-client) run unchanged in the demo and the tests, and it can
inject the faults real APIs produce.
"""
