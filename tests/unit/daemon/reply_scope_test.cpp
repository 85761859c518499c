#include "service/reply_scope.hpp"

#include <memory>

#include <catch2/catch.hpp>

using r3mapd::service::ReplyScope;

TEST_CASE("a removed object outlives the reply scope's work, not the scope", "[reply-scope]")
{
	std::weak_ptr<int> gone;
	{
		ReplyScope scope;
		auto object = std::make_shared<int>(1);
		gone = object;
		ReplyScope::keep(std::move(object));
		CHECK_FALSE(gone.expired()); // the reply is built here, with the object alive
	}
	CHECK(gone.expired());
}

TEST_CASE("without a scope the object goes at once; nested scopes keep for the innermost", "[reply-scope]")
{
	auto a = std::make_shared<int>(1);
	std::weak_ptr<int> weakA = a;
	ReplyScope::keep(std::move(a));
	CHECK(weakA.expired());

	std::weak_ptr<int> inner, outer;
	{
		ReplyScope outerScope;
		{
			ReplyScope innerScope;
			auto b = std::make_shared<int>(2);
			inner = b;
			ReplyScope::keep(std::move(b));
		}
		CHECK(inner.expired());
		auto c = std::make_shared<int>(3);
		outer = c;
		ReplyScope::keep(std::move(c));
		CHECK_FALSE(outer.expired());
	}
	CHECK(outer.expired());
}
