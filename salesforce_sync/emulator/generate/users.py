"""Users: the integration user, an admin, sales and marketing colleagues, and a deactivated one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from salesforce_sync.emulator.generate.draws import Columns, Draws, between, maybe, object_array
from salesforce_sync.emulator.generate.plan import DAY, HISTORY_SECONDS
from salesforce_sync.emulator.generate.pools import USERS
from salesforce_sync.emulator.ids import KEY_PREFIXES, make_id

if TYPE_CHECKING:
    from salesforce_sync.emulator.generate.plan import Plan

USER_DOMAIN = "emulated.example.com"
INTEGRATION_USERNAME = f"integration@{USER_DOMAIN}"
INTEGRATION_USER_ID = make_id(KEY_PREFIXES["User"], 1, pod="5g")
ADMIN = 1  # the admin created the other users and manages the sales team


def integration_user_id() -> str:
    """Id of the user the emulated org authenticates API clients as."""
    return INTEGRATION_USER_ID


def user_columns(plan: Plan) -> Columns:
    idx = np.arange(len(USERS))
    d = Draws(plan, "User", idx)
    created = np.full(len(idx), plan.now - HISTORY_SECONDS - 30 * DAY, dtype=np.int64) + idx * 3600
    modified = between(d, "Modified", created, plan.now)
    viewed = maybe(d.chance("Viewed", 0.5), between(d, "ViewedAt", modified, plan.now) * 1000)
    active_users = np.array([row[-1] for row in USERS])
    logged_in = maybe(active_users, between(d, "LoginAt", modified, plan.now) * 1000)
    first, last, local, alias, zone, locale, language, title, active = (object_array(*v) for v in zip(*USERS))
    usernames = local + "@" + USER_DOMAIN
    none = np.full(len(idx), None, dtype=object)
    return {
        "Id": plan.user_ids, "Username": usernames, "LastName": last, "FirstName": first,
        "Name": first + " " + last, "CompanyName": "Emulated Org", "Division": None,
        "Department": maybe(idx > ADMIN, np.where(np.char.find(title.astype(str), "Marketing") >= 0, "Marketing", "Sales")),
        "Title": title,
        **{key: none for key in ("Street", "City", "State", "PostalCode", "Country", "Latitude", "Longitude",
                                 "GeocodeAccuracy", "Phone", "MobilePhone", "EmployeeNumber", "FederationIdentifier")},
        "Email": usernames, "Alias": alias, "CommunityNickname": local,
        "IsActive": active.astype(bool), "TimeZoneSidKey": zone, "LocaleSidKey": locale,
        "EmailEncodingKey": np.where(locale == "ja_JP", "Shift_JIS", "UTF-8").astype(object),
        "LanguageLocaleKey": language,
        "ManagerId": maybe(idx > ADMIN, plan.user_ids[ADMIN]), "LastLoginDate": logged_in, "UserType": "Standard",
        "CreatedDate": created * 1000, "CreatedById": plan.user_ids[np.minimum(idx, ADMIN)],
        "LastModifiedDate": modified * 1000, "LastModifiedById": plan.user_ids[np.full(len(idx), ADMIN)],
        "SystemModstamp": modified * 1000, "LastViewedDate": viewed, "LastReferencedDate": viewed,
    }
