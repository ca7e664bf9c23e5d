"""FakeDiscord's world building (guilds, channels, roles, members) and its acting as Discord's users."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tests.fakes.discord_gateway import INTENT_GUILD_MEMBERS, INTENT_GUILDS, GatewaySession
from tests.fakes.discord_interactions import APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT, ModalValue
from tests.fakes.discord_models import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    DEFAULT_MEMBER_PERMISSIONS,
    FakeChannel,
    FakeGuild,
    FakeInteraction,
    FakeMember,
    FakeRole,
    FakeUser,
)

SessionChoice = GatewaySession | int | None  # a session, an index into sessions_for_shard(...), or the newest


class WorldBuilding:
    """FakeDiscord's calls that build the world and act as its users (clicks, commands, modals)."""

    # --- world building -----------------------------------------------------------------------------------

    def add_guild(
        self,
        *,
        name: str = "Test Guild",
        premium_tier: int = 0,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        shard: int | None = None,
        preferred_locale: str = "en-US",
    ) -> int:
        """Add a guild the bot is in; the bot's permissions come from its managed role, on top of @everyone.

        `shard` places it on that shard (its id is chosen so that `(id >> 22) % shard_count == shard`);
        by default it lands wherever its id's timestamp puts it.
        """
        if shard is None:
            guild_id = self.new_id()
        elif 0 <= shard < self.shard_count:
            guild_id = self.new_id.on_shard(shard, self.shard_count)
        else:
            raise ValueError(f"shard {shard} does not exist: the fake has shard_count={self.shard_count}")
        guild = FakeGuild(guild_id, name, premium_tier, owner_id=self.owner_user_id, created_at=self.now())
        guild.preferred_locale = preferred_locale
        guild.roles[guild_id] = FakeRole(guild_id, "@everyone", everyone_permissions)
        _check_covers(everyone_permissions, bot_permissions, "the bot")
        bot_user = self.users[self.bot_user_id]
        bot_role = FakeRole(self.new_id(), bot_user.name, bot_permissions, position=1, managed=True)
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot_user_id] = FakeMember(bot_user, [bot_role.id], self.now())
        guild.members[self.owner_user_id] = FakeMember(self.users[self.owner_user_id], [], self.now())
        self._join(guild)
        return guild_id

    def remove_bot(self, guild_id: int) -> None:
        """The bot is removed from a guild (kicked, or the guild deleted): GUILD_DELETE without `unavailable`,
        which discord.py reports as on_guild_remove. The guild and its channels are kept aside: the bot can no
        longer reach them (403 Missing Access) until `add_bot_back`."""
        self.departed_guilds[guild_id] = self.guilds.pop(guild_id)
        self.gateway.broadcast("GUILD_DELETE", {"id": str(guild_id)}, guild_id=guild_id, intent=INTENT_GUILDS)

    def add_bot_back(self, guild_id: int) -> None:
        """Invite the bot again to a guild it was removed from: a GUILD_CREATE, on_guild_join in discord.py."""
        self._join(self.departed_guilds.pop(guild_id))

    def _join(self, guild: FakeGuild) -> None:
        self.guilds[guild.id] = guild
        joined = guild.to_payload(bot_user_id=self.bot_user_id)
        del joined["unavailable"]  # a guild joined mid-session has no "unavailable" key: discord.py's guild_join
        self.gateway.broadcast("GUILD_CREATE", joined, guild_id=guild.id, intent=INTENT_GUILDS)

    def add_channel(self, guild_id: int, *, name: str = "general") -> int:
        """Add a text channel (no permission overwrites)."""
        guild = self.guilds[guild_id]
        channel = FakeChannel(self.new_id(), guild_id, name, position=len(guild.channels))
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        self.store.add_channel(channel.id)
        self.gateway.broadcast("CHANNEL_CREATE", channel.to_payload(), guild_id=guild_id, intent=INTENT_GUILDS)
        return channel.id

    def delete_channel(self, channel_id: int) -> None:
        """Delete a channel as a moderator would: gone from the guild, CHANNEL_DELETE sent."""
        channel = self.channels.pop(channel_id)
        del self.guilds[channel.guild_id].channels[channel_id]
        self.gateway.broadcast("CHANNEL_DELETE", channel.to_payload(), guild_id=channel.guild_id, intent=INTENT_GUILDS)

    def add_role(self, guild_id: int, *, name: str, permissions: int = 0, mentionable: bool = False) -> int:
        guild = self.guilds[guild_id]
        role = FakeRole(self.new_id(), name, permissions, position=len(guild.roles), mentionable=mentionable)
        guild.roles[role.id] = role
        payload = {"guild_id": str(guild_id), "role": role.to_payload()}
        self.gateway.broadcast("GUILD_ROLE_CREATE", payload, guild_id=guild_id, intent=INTENT_GUILDS)
        return role.id

    def set_client_locale(self, user_id: int, locale: str) -> None:
        """The member switches their Discord client's language ("fr", "pt-BR"...): sent on their interactions."""
        self.client_locales[user_id] = locale

    def add_member(
        self,
        guild_id: int,
        *,
        name: str = "member",
        permissions: int = DEFAULT_MEMBER_PERMISSIONS,
        bot: bool = False,
        roles: Sequence[int] = (),
    ) -> int:
        """Add a user to the guild; permissions beyond @everyone's come from a role made for this member."""
        guild = self.guilds[guild_id]
        everyone_permissions = guild.roles[guild_id].permissions
        _check_covers(everyone_permissions, permissions, f"member {name!r}")
        user = FakeUser(self.new_id(), name, bot=bot)
        self.users[user.id] = user
        role_ids = list(roles)
        if permissions != everyone_permissions:
            role_ids.append(self.add_role(guild_id, name=f"{name}-permissions", permissions=permissions))
        member = FakeMember(user, role_ids, self.now())
        guild.members[user.id] = member
        payload = member.to_payload() | {"guild_id": str(guild_id)}
        self.gateway.broadcast("GUILD_MEMBER_ADD", payload, guild_id=guild_id, intent=INTENT_GUILD_MEMBERS)
        return user.id

    def set_bot_permissions(self, guild_id: int, permissions: int) -> None:
        """Change what the bot may do in a guild (its managed role), e.g. to take away SEND_MESSAGES."""
        guild = self.guilds[guild_id]
        _check_covers(guild.roles[guild_id].permissions, permissions, "the bot")
        bot_role = guild.roles[guild.members[self.bot_user_id].role_ids[0]]
        bot_role.permissions = permissions
        payload = {"guild_id": str(guild_id), "role": bot_role.to_payload()}
        self.gateway.broadcast("GUILD_ROLE_UPDATE", payload, guild_id=guild_id, intent=INTENT_GUILDS)

    # --- acting as Discord's users ------------------------------------------------------------------------
    #
    # Every interaction goes to its guild's shard. By default only to the newest live session holding that
    # shard; `session=` picks one (a GatewaySession, or an index into sessions_for_shard(shard), oldest first);
    # `to_all_sessions=True` sends the same interaction (same id and token) to every live session of the shard,
    # as Discord does when several sessions hold one shard. Only the first callback is accepted (40060 after).

    async def invoke_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        subcommand: str | None = None,
        app_permissions: int | None = None,
        attachment_size_limit: int | None = None,
        session: SessionChoice = None,
        to_all_sessions: bool = False,
        locale: str | None = None,
    ) -> FakeInteraction:
        """Dispatch a chat-input command. `subcommand` is "sub" or "group sub". Values: see infer_option_type.
        `locale`: the language of the member's Discord client (default: as set with `set_client_locale`)."""
        data = self._builder.command_data(name, options or {}, guild_id=guild_id, subcommand=subcommand)
        interaction = self._builder.new_interaction(
            APPLICATION_COMMAND,
            data,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            app_permissions=app_permissions,
            attachment_size_limit=attachment_size_limit,
            locale=locale,
        )
        return self._dispatch_interaction(interaction, session=session, to_all_sessions=to_all_sessions)

    async def invoke_message_command(
        self,
        name: str,
        message_id: int,
        *,
        user_id: int,
        app_permissions: int | None = None,
        session: SessionChoice = None,
        to_all_sessions: bool = False,
    ) -> FakeInteraction:
        """Run a message command from a message's Apps menu: an APPLICATION_COMMAND interaction whose data has
        type 3, the message's id as `target_id` and the message in `resolved.messages`."""
        message = self.message(message_id)
        if message.ephemeral:
            raise ValueError("an ephemeral message has no Apps menu")
        guild_id = self.channels[message.channel_id].guild_id
        data = self._builder.message_command_data(name, message, guild_id=guild_id)
        interaction = self._builder.new_interaction(
            APPLICATION_COMMAND,
            data,
            guild_id=guild_id,
            channel_id=message.channel_id,
            user_id=user_id,
            app_permissions=app_permissions,
        )
        return self._dispatch_interaction(interaction, session=session, to_all_sessions=to_all_sessions)

    async def click_button(
        self,
        message_id: int,
        custom_id: str,
        *,
        user_id: int,
        session: SessionChoice = None,
        to_all_sessions: bool = False,
    ) -> FakeInteraction:
        return await self._use_component(
            message_id, custom_id, user_id=user_id, values=None, session=session, to_all_sessions=to_all_sessions
        )

    async def choose_options(
        self,
        message_id: int,
        custom_id: str,
        values: Sequence[str],
        *,
        user_id: int,
        session: SessionChoice = None,
        to_all_sessions: bool = False,
    ) -> FakeInteraction:
        """Pick `values` in a select menu on a message."""
        return await self._use_component(
            message_id,
            custom_id,
            user_id=user_id,
            values=list(values),
            session=session,
            to_all_sessions=to_all_sessions,
        )

    async def _use_component(
        self,
        message_id: int,
        custom_id: str,
        *,
        user_id: int,
        values: list[str] | None,
        session: SessionChoice,
        to_all_sessions: bool,
    ) -> FakeInteraction:
        message = self.message(message_id)
        component = self._builder.find_component(message, custom_id)
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled; a user cannot use it")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"], "id": component.get("id")}
        if values is not None:
            data["values"] = values
        guild_id = self.channels[message.channel_id].guild_id
        interaction = self._builder.new_interaction(
            MESSAGE_COMPONENT, data, guild_id=guild_id, channel_id=message.channel_id, user_id=user_id, message=message
        )
        return self._dispatch_interaction(interaction, session=session, to_all_sessions=to_all_sessions)

    async def submit_modal(
        self,
        custom_id: str,
        values: Mapping[str, ModalValue],
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        session: SessionChoice = None,
        to_all_sessions: bool = False,
    ) -> FakeInteraction:
        """Submit the modal the bot last showed with this custom_id, filling in `values` by input custom_id.

        Text inputs take a str, selects and file uploads a list of values, checkboxes a bool. The submitted
        components mirror the modal's own layout (action rows or labels), as Discord's client sends them.
        """
        shown = next(
            (i for i in reversed(self.interactions.values()) if i.modal and i.modal.get("custom_id") == custom_id),
            None,
        )
        if shown is None or shown.modal is None:
            raise LookupError(f"the bot never showed a modal with custom_id {custom_id!r}")
        data = {"custom_id": custom_id, "components": self._builder.modal_submit_components(shown.modal, values)}
        interaction = self._builder.new_interaction(
            MODAL_SUBMIT,
            data,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            message=shown.source_message,
        )
        return self._dispatch_interaction(interaction, session=session, to_all_sessions=to_all_sessions)

    async def disconnect_bot(self, code: int = 4000, *, session: GatewaySession | None = None) -> None:
        """Drop the bot's gateway connection (the newest, or `session`) like a network failure would;
        discord.py reconnects by itself."""
        session = session or self.gateway.current
        if session is None or session.closed:
            raise RuntimeError("no bot is connected to the fake gateway")
        await session.close(code, "Fake disconnect")

    def _dispatch_interaction(
        self, interaction: FakeInteraction, *, session: SessionChoice, to_all_sessions: bool
    ) -> FakeInteraction:
        targets = self._interaction_targets(self.shard_of(interaction.guild_id), session, to_all_sessions)
        self.interactions[interaction.id] = interaction
        self.interactions_by_token[interaction.token] = interaction
        for target in targets:
            target.dispatch("INTERACTION_CREATE", interaction.payload)
        interaction.delivered_to = targets
        return interaction

    def _interaction_targets(self, shard: int, session: SessionChoice, to_all_sessions: bool) -> list[GatewaySession]:
        live = self.gateway.sessions_for_shard(shard)
        if session is not None and to_all_sessions:
            raise ValueError("pass either session= or to_all_sessions=True, not both")
        if not live:
            raise RuntimeError(f"no bot is connected to the fake gateway on shard {shard}")
        if to_all_sessions:
            return live
        if session is None:
            return [live[-1]]
        if isinstance(session, int):
            if not -len(live) <= session < len(live):
                raise IndexError(f"shard {shard} has {len(live)} live session(s); there is no session {session}")
            return [live[session]]
        if session not in live:
            state = "closed" if session.closed else "not identified" if not session.identified else "on another shard"
            raise ValueError(f"that session is {state}: Discord would not send it an interaction of shard {shard}")
        return [session]


def _check_covers(everyone_permissions: int, permissions: int, who: str) -> None:
    """Role permissions only add up, so nobody can have fewer permissions than @everyone."""
    if everyone_permissions & ~permissions:
        raise ValueError(
            f"{who} cannot lack permissions that @everyone has ({everyone_permissions & ~permissions:#x}); "
            "pass a smaller everyone_permissions to add_guild"
        )
