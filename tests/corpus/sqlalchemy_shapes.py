"""Statements in the exact shapes SQLAlchemy 2 emits, compiled from real Core and ORM constructs.

Compiled for ``postgresql+psycopg`` with ``render_postcompile``, so parameters
look like ``%(name_1)s``, ``IN`` lists are expanded (``%(id_1_1)s, %(id_1_2)s``)
and limits are parameters (``LIMIT %(param_1)s``) — what reaches psycopg.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    String,
    any_,
    delete,
    exists,
    func,
    insert,
    lateral,
    literal,
    literal_column,
    select,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, mapped_column, relationship
from sqlalchemy.sql.expression import ClauseElement


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    email: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime.datetime]
    addresses: Mapped[list[Address]] = relationship(back_populates="user")
    orders: Mapped[list[Order]] = relationship(back_populates="user")


class Address(Base):
    __tablename__ = "addresses"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    email: Mapped[str] = mapped_column(String(200))
    user: Mapped[User] = relationship(back_populates="addresses")


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20))
    total: Mapped[float]
    created: Mapped[datetime.datetime]
    user: Mapped[User] = relationship(back_populates="orders")


class OrderLine(Base):
    __tablename__ = "order_lines"
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    quantity: Mapped[int]
    price: Mapped[float]


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    tags: Mapped[list[str]] = mapped_column(ARRAY(String))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)


DIALECT = postgresql.psycopg.dialect()  # type: ignore[attr-defined]


def compile_for_psycopg(statement: ClauseElement) -> str:
    """The text SQLAlchemy hands to psycopg for ``statement``."""
    return str(statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True}))


def _statements() -> dict[str, ClauseElement]:
    spent = select(Order.user_id, func.sum(Order.total).label("spent")).group_by(Order.user_id).subquery()
    recent = select(Order.id, Order.user_id).where(Order.created > datetime.datetime(2024, 1, 1)).cte("recent")
    latest = lateral(select(Order.total).where(Order.user_id == User.id).order_by(Order.created.desc()).limit(1)).alias(
        "latest"
    )
    return {
        "get_by_pk": select(User).where(User.id == 5),
        "in_list": select(User).where(User.name.in_(["ann", "bob", "cid"])),
        "join_page": select(User)
        .join(User.addresses)
        .where(Address.email.like("%@example.com"))
        .order_by(User.id)
        .limit(10)
        .offset(20),
        "group_having": select(User.id, func.count(Order.id))
        .outerjoin(Order)
        .group_by(User.id)
        .having(func.count(Order.id) > 5),
        "selectin_load": select(Address).where(Address.user_id.in_([1, 2, 3, 4])),
        "joined_load": select(User).options(joinedload(User.addresses)).where(User.id == 7),
        "subquery_join": select(User.name, spent.c.spent).join(spent, User.id == spent.c.user_id),
        "cte": select(User.name, recent.c.id).join(recent, recent.c.user_id == User.id),
        "exists": select(User).where(exists().where(Order.user_id == User.id, Order.status == "open")),
        "window": select(Order.id, func.row_number().over(partition_by=Order.user_id, order_by=Order.created.desc())),
        "union_all": union_all(select(User.email), select(Address.email)),
        "insert_returning": insert(User)
        .values(name="x", email="x@example.com", created_at=datetime.datetime(2024, 1, 1))
        .returning(User.id),
        "insert_many": insert(OrderLine).values(
            [
                {"order_id": 1, "product_id": 2, "quantity": 3, "price": 4.5},
                {"order_id": 1, "product_id": 3, "quantity": 1, "price": 9.5},
            ]
        ),
        "upsert": postgresql.insert(Product)
        .values(id=1, name="lamp", tags=["home"], data={})
        .on_conflict_do_update(index_elements=[Product.id], set_={"name": "lamp"}),
        "update": update(User).where(User.id == 1).values(name="zed"),
        "update_from": update(User).where(User.id == Order.user_id).values(name=Order.status),
        "delete": delete(Address).where(Address.user_id == 3),
        "delete_using": delete(Address).where(Address.user_id == User.id, User.name == "x"),
        "for_update": select(Order).where(Order.id == 1).with_for_update(skip_locked=True),
        "jsonb": select(Product).where(Product.data["color"].astext == "red"),
        "array_any": select(Product).where(literal("sale") == any_(Product.tags)),
        "lateral": select(User.name, latest.c.total).join(latest, true()),
        "recent_orders": select(Order).where(Order.created > func.now() - literal_column("interval '1 day'")),
        "in_subquery": select(User).where(User.id.in_(select(Order.user_id).where(Order.total > 100))),
        "tuple_in": select(OrderLine).where(tuple_(OrderLine.order_id, OrderLine.product_id).in_([(1, 2), (3, 4)])),
        "count": select(func.count()).select_from(User),
        "distinct_on": select(Order)
        .ext(postgresql.distinct_on(Order.user_id))
        .order_by(Order.user_id, Order.created.desc()),
    }


def sqlalchemy_statements() -> dict[str, str]:
    """Name → compiled text for every statement shape above."""
    return {name: compile_for_psycopg(statement) for name, statement in _statements().items()}
