"""A small ORM application (authors, books, reviews) that the SQLAlchemy tests run unchanged on plain and
instrumented engines, sync and async, comparing what it observed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy import Engine, ForeignKey, Numeric, String, create_engine, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    country: Mapped[str] = mapped_column(String(2))
    books: Mapped[list[Book]] = relationship(back_populates="author", order_by="Book.id")


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    year: Mapped[int]
    price: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    author: Mapped[Author] = relationship(back_populates="books")
    reviews: Mapped[list[Review]] = relationship(back_populates="book", order_by="Review.id", cascade="all")


class Review(Base):
    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id"), index=True)
    stars: Mapped[int]
    body: Mapped[str] = mapped_column(String(200))
    book: Mapped[Book] = relationship(back_populates="reviews")


BOOKS_OF_AUTHOR_INDEX = "ix_books_author_id"


def sync_engine(dsn: str, **options: Any) -> Engine:
    """An engine on the test database (psycopg 3, the libpq connection string of the ``dsn`` fixture)."""
    return create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn), **options)


def async_engine(dsn: str, **options: Any) -> AsyncEngine:
    return create_async_engine(
        "postgresql+psycopg://", async_creator=lambda: psycopg.AsyncConnection.connect(dsn), **options
    )


def _authors() -> list[Author]:
    countries = ["fr", "de", "jp", "br"]
    return [
        Author(
            name=f"author {number}",
            country=countries[number % 4],
            books=[
                Book(title=f"book {number}.{index}", year=1990 + number * 3 + index, price=Decimal(10 + index))
                for index in range(1, 4)
            ],
        )
        for number in range(1, 9)
    ]


def _reviews() -> list[dict[str, Any]]:
    return [
        {"book_id": book, "stars": 1 + (book * 7 + index) % 5, "body": f"review {book}.{index}"}
        for book in range(1, 25)
        for index in range(3)
    ]


_BY_COUNTRY = (
    select(Author.country, func.count(Book.id), func.sum(Book.price))
    .join(Author.books)
    .group_by(Author.country)
    .order_by(Author.country)
)


def _snapshot(session: Session) -> list[Any]:
    return [
        session.execute(select(Author.id, Author.name, Author.country).order_by(Author.id)).all(),
        session.execute(select(Book.id, Book.author_id, Book.title, Book.year, Book.price).order_by(Book.id)).all(),
        session.execute(select(Review.id, Review.book_id, Review.stars, Review.body).order_by(Review.id)).all(),
    ]


def run_sync(engine: Engine) -> list[Any]:
    """Create the schema, write and read through the ORM; return everything observed as plain data."""
    seen: list[Any] = []
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(_authors())
        session.commit()
        session.execute(insert(Review), _reviews())  # bulk insert (insertmanyvalues)
        session.commit()
    with Session(engine) as session:
        authors = session.scalars(select(Author).options(selectinload(Author.books)).order_by(Author.id)).all()
        seen.append([(a.name, [b.title for b in a.books]) for a in authors])
        seen.append(session.execute(_BY_COUNTRY).all())
        book = session.get(Book, 5)
        assert book is not None
        seen.append((book.title, book.author.name, [(r.stars, r.body) for r in book.reviews]))
        seen.append(session.scalars(select(Book.title).where(Book.id.in_([2, 3, 11])).order_by(Book.id)).all())
        seen.append(session.scalars(select(Book.title).where(Book.price > 11).order_by(Book.id).limit(4)).all())
        book.price = book.price * 2  # unit-of-work update
        session.commit()
    with Session(engine) as session:
        session.execute(update(Book).where(Book.year < 2000).values(price=Book.price + 1))
        session.execute(update(Book), [{"id": 1, "title": "renamed 1"}, {"id": 2, "title": "renamed 2"}])
        session.execute(delete(Review).where(Review.stars < 2))
        review = session.get(Review, 2)
        if review is not None:
            session.delete(review)
        session.commit()
    with Session(engine) as session:
        author = session.get(Author, 1)
        assert author is not None
        author.name = "never committed"
        session.flush()
        seen.append(session.scalar(select(Author.name).where(Author.id == 1)))  # the transaction's own write
        session.rollback()
        seen.append(session.scalar(select(Author.name).where(Author.id == 1)))
    with Session(engine) as session:  # earlier reads again: books changed since, authors did not
        seen.append(session.execute(_BY_COUNTRY).all())
        seen.append(session.scalars(select(Author.name).order_by(Author.id)).all())
        seen.append(session.scalars(select(Author.name).order_by(Author.id)).all())
        seen.extend(_snapshot(session))
    return seen


async def run_async(engine: AsyncEngine) -> list[Any]:
    """The same application through ``AsyncSession``."""
    seen: list[Any] = []
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        session.add_all(_authors())
        await session.commit()
        await session.execute(insert(Review), _reviews())
        await session.commit()
    async with AsyncSession(engine) as session:
        authors = (await session.scalars(select(Author).options(selectinload(Author.books)).order_by(Author.id))).all()
        seen.append([(a.name, [b.title for b in a.books]) for a in authors])
        book = await session.get(Book, 5)
        assert book is not None
        reviews = (await session.scalars(select(Review).where(Review.book_id == book.id).order_by(Review.id))).all()
        seen.append((book.title, [(r.stars, r.body) for r in reviews]))
        seen.append((await session.scalars(select(Book.title).where(Book.id.in_([2, 3, 11])).order_by(Book.id))).all())
        book.price = book.price * 2
        await session.commit()
    async with AsyncSession(engine) as session:
        await session.execute(update(Book).where(Book.year < 2000).values(price=Book.price + 1))
        await session.execute(delete(Review).where(Review.stars < 2))
        await session.commit()
    async with AsyncSession(engine) as session:
        author = await session.get(Author, 1)
        assert author is not None
        author.name = "never committed"
        await session.flush()
        seen.append(await session.scalar(select(Author.name).where(Author.id == 1)))
        await session.rollback()
        seen.append(await session.scalar(select(Author.name).where(Author.id == 1)))
        seen.extend(await session.run_sync(_snapshot))
    return seen


def drop_sync(engine: Engine) -> None:
    Base.metadata.drop_all(engine)


async def drop_async(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)


def seed_sync(engine: Engine) -> None:
    """Create and fill the schema (for tests about single queries)."""
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(_authors())
        session.commit()
        session.execute(insert(Review), _reviews())
        session.commit()
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
