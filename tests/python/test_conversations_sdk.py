"""The openai SDK's conversations client against spool, and responses that
continue a conversation."""

from __future__ import annotations

import openai
import pytest

from conftest import text_script
from test_openai_sdk import UP_MODEL, marker


def test_conversation_crud_with_the_sdk(client):
    conv = client.conversations.create(
        metadata={"topic": "sdk"},
        items=[{"type": "message", "role": "user", "content": "first"}],
    )
    assert conv.id.startswith("conv_") and conv.object == "conversation"
    assert client.conversations.retrieve(conv.id).metadata == {"topic": "sdk"}
    assert client.conversations.update(conv.id, metadata={"topic": "new"}).metadata == {"topic": "new"}

    added = client.conversations.items.create(
        conv.id, items=[{"type": "message", "role": "user", "content": "second"}]
    )
    assert [i.content[0].text for i in added.data] == ["second"]
    listed = list(client.conversations.items.list(conv.id, order="asc", limit=1))
    assert [i.content[0].text for i in listed] == ["first", "second"], "auto-paging follows after"
    item = client.conversations.items.retrieve(added.data[0].id, conversation_id=conv.id)
    assert item.content[0].text == "second"
    client.conversations.items.delete(added.data[0].id, conversation_id=conv.id)
    assert [i.content[0].text for i in client.conversations.items.list(conv.id)] == ["first"]

    deleted = client.conversations.delete(conv.id)
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)


def test_a_response_continues_and_extends_a_conversation(client, upstream):
    mk = marker()
    conv = client.conversations.create(items=[{"type": "message", "role": "user", "content": f"I am Ada {mk}"}])
    upstream.push(text_script(["Hello", " Ada"], match=mk))
    r = client.responses.create(model=UP_MODEL, input=f"hi {mk}", conversation=conv.id)
    assert r.status == "completed" and r.output_text == "Hello Ada"
    assert r.conversation is not None and r.conversation.id == conv.id
    (req,) = upstream.chat_requests(mk)
    contents = [m["content"] for m in req.body["messages"]]
    assert contents == [f"I am Ada {mk}", f"hi {mk}"]
    texts = [i.content[0].text for i in client.conversations.items.list(conv.id, order="asc")]
    assert texts == [f"I am Ada {mk}", f"hi {mk}", "Hello Ada"]


def test_conversation_with_previous_response_id_is_a_bad_request(client):
    conv = client.conversations.create()
    first = client.responses.create(model="echo", input="x")
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="echo", input="y", conversation=conv.id, previous_response_id=first.id)
    assert e.value.body["param"] == "conversation"
