-- First start of the compose PostgreSQL: one database per app, each owned by the app role.
-- (A service never reads another service's tables; separate databases make that physical.)
CREATE DATABASE gateway OWNER upstander;
CREATE DATABASE intake OWNER upstander;
CREATE DATABASE cases OWNER upstander;
CREATE DATABASE training OWNER upstander;
CREATE DATABASE notify OWNER upstander;
