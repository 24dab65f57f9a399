"""One module per use case (a flow): the business rules, keyword-only arguments,
one transaction each, every cost of a request visible in one function.

Views parse, call one flow and shape the answer; a refusal is raised as
core.errors.ApiError. Flows use the layers below them (signup.messages,
limits, codes, tokens, selectors, models, then messaging and core) and
never each other's internals in a circle: signup, verification and the
code requests share signup.flows.codes.
"""
