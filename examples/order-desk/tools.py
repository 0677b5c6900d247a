"""The order desk's tools: each takes the episode state first, then the call's arguments."""


def get_order(state, order_id):
    """An order's status and items, or an error the model sees."""
    order = state["orders"].get(order_id)
    if order is None:
        raise KeyError(f"no order {order_id}")
    return order


def cancel_order(state, order_id):
    """Cancel an order that has not shipped."""
    order = get_order(state, order_id)
    if order["status"] != "open":
        raise ValueError(f"order {order_id} is {order['status']}; only open orders can be canceled")
    order["status"] = "canceled"
    return {"order_id": order_id, "status": "canceled"}


def transfer_to_human(state, summary):
    """Hand the conversation to a person (ends the episode)."""
    state["transferred"] = summary
    return "A colleague will take over."
