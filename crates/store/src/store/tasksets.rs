//! Tasksets and their tasks. Adding tasks is all or nothing (one transaction).

use crate::Result;
use crate::error::{corrupt, db, encode};
use crate::eval::{StoredTask, TasksetRecord};
use crate::store::{Store, now_ms};
use rollout_domain::Task;

macro_rules! taskset_columns {
    () => {
        "t.id, t.project_id, t.name, t.description, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM taskset_tasks x WHERE x.taskset_id = t.id) AS task_count, \
         t.created_at, t.updated_at"
    };
}

const INSERT_TASKSET: &str = "INSERT INTO tasksets (id, project_id, name, description, \
     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)";
const GET_TASKSET: &str = concat!(
    "SELECT ",
    taskset_columns!(),
    " FROM tasksets t WHERE t.project_id = $1 AND t.name = $2"
);
const LIST_TASKSETS: &str = concat!(
    "SELECT ",
    taskset_columns!(),
    " FROM tasksets t WHERE t.project_id = $1 ORDER BY t.name"
);
/// Touches the taskset, which also takes its row lock for the rest of the transaction.
const TOUCH_TASKSET: &str =
    "UPDATE tasksets SET updated_at = $3 WHERE project_id = $1 AND name = $2 RETURNING id";
const NEXT_POSITION: &str =
    "SELECT COALESCE(MAX(position), -1) + 1 FROM taskset_tasks WHERE taskset_id = $1";
const INSERT_TASK: &str =
    "INSERT INTO taskset_tasks (taskset_id, task_id, position, task) VALUES ($1, $2, $3, $4)";
const LIST_TASKS: &str = "SELECT task_id, position, task FROM taskset_tasks \
     WHERE taskset_id = $1 ORDER BY position";
const DELETE_TASK: &str = "DELETE FROM taskset_tasks WHERE taskset_id = \
     (SELECT id FROM tasksets WHERE project_id = $1 AND name = $2) AND task_id = $3";
const DELETE_TASKS_OF: &str = "DELETE FROM taskset_tasks WHERE taskset_id = \
     (SELECT id FROM tasksets WHERE project_id = $1 AND name = $2)";
const DELETE_TASKSET: &str = "DELETE FROM tasksets WHERE project_id = $1 AND name = $2";

#[derive(sqlx::FromRow)]
struct TasksetRow {
    id: String,
    project_id: String,
    name: String,
    description: String,
    task_count: i64,
    created_at: i64,
    updated_at: i64,
}

impl From<TasksetRow> for TasksetRecord {
    fn from(row: TasksetRow) -> Self {
        TasksetRecord {
            id: row.id,
            project_id: row.project_id,
            name: row.name,
            description: row.description,
            task_count: row.task_count,
            created_at_ms: row.created_at,
            updated_at_ms: row.updated_at,
        }
    }
}

impl Store {
    /// Creates a taskset with its tasks, each `(id, task)`, in one transaction. `None` when
    /// the project already has a taskset of that name.
    pub async fn create_taskset(
        &self,
        project_id: &str,
        name: &str,
        description: &str,
        tasks: &[(String, Task)],
    ) -> Result<Option<TasksetRecord>> {
        const OP: &str = "creating a taskset";
        let id = rollout_domain::new_id();
        let mut tx = self.begin_write(OP).await?;
        let inserted = sqlx::query(INSERT_TASKSET)
            .bind(id.clone())
            .bind(project_id.to_string())
            .bind(name.to_string())
            .bind(description.to_string())
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(db(OP));
        match inserted {
            Err(error) if error.is_unique_violation() => return Ok(None),
            other => other?,
        };
        insert_tasks(&mut tx, &id, 0, tasks).await?;
        tx.commit().await.map_err(db(OP))?;
        self.get_taskset(project_id, name).await
    }

    /// Appends tasks to a taskset, all or none. `None` when the taskset does not exist.
    pub async fn add_tasks(
        &self,
        project_id: &str,
        name: &str,
        tasks: &[(String, Task)],
    ) -> Result<Option<TasksetRecord>> {
        const OP: &str = "adding tasks to a taskset";
        let mut tx = self.begin_write(OP).await?;
        let id: Option<String> = sqlx::query_scalar(TOUCH_TASKSET)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .bind(now_ms())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db(OP))?;
        let Some(id) = id else {
            return Ok(None);
        };
        let next: i64 = sqlx::query_scalar(NEXT_POSITION)
            .bind(id.clone())
            .fetch_one(&mut *tx)
            .await
            .map_err(db(OP))?;
        insert_tasks(&mut tx, &id, next, tasks).await?;
        tx.commit().await.map_err(db(OP))?;
        self.get_taskset(project_id, name).await
    }

    /// A taskset of the project by name.
    pub async fn get_taskset(&self, project_id: &str, name: &str) -> Result<Option<TasksetRecord>> {
        Ok(sqlx::query_as::<_, TasksetRow>(GET_TASKSET)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db("reading a taskset"))?
            .map(TasksetRecord::from))
    }

    /// The project's tasksets, by name.
    pub async fn list_tasksets(&self, project_id: &str) -> Result<Vec<TasksetRecord>> {
        Ok(sqlx::query_as::<_, TasksetRow>(LIST_TASKSETS)
            .bind(project_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing tasksets"))?
            .into_iter()
            .map(TasksetRecord::from)
            .collect())
    }

    /// The tasks of a taskset (by its id), in order.
    pub async fn taskset_tasks(&self, taskset_id: &str) -> Result<Vec<StoredTask>> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(LIST_TASKS)
            .bind(taskset_id.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db("listing the tasks of a taskset"))?;
        rows.into_iter()
            .map(|(id, position, task)| {
                Ok(StoredTask {
                    id,
                    position,
                    task: serde_json::from_str(&task).map_err(corrupt("task"))?,
                })
            })
            .collect()
    }

    /// Removes one task. False when there was no such task.
    pub async fn remove_task(&self, project_id: &str, name: &str, task_id: &str) -> Result<bool> {
        let result = sqlx::query(DELETE_TASK)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .bind(task_id.to_string())
            .execute(self.pool())
            .await
            .map_err(db("removing a task"))?;
        Ok(result.rows_affected() > 0)
    }

    /// Deletes a taskset and its tasks (jobs and runs made from it stay). False when it did
    /// not exist.
    pub async fn delete_taskset(&self, project_id: &str, name: &str) -> Result<bool> {
        const OP: &str = "deleting a taskset";
        let mut tx = self.begin_write(OP).await?;
        sqlx::query(DELETE_TASKS_OF)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        let result = sqlx::query(DELETE_TASKSET)
            .bind(project_id.to_string())
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db(OP))?;
        tx.commit().await.map_err(db(OP))?;
        Ok(result.rows_affected() > 0)
    }
}

async fn insert_tasks(
    conn: &mut sqlx::AnyConnection,
    taskset_id: &str,
    first_position: i64,
    tasks: &[(String, Task)],
) -> Result<()> {
    for (offset, (id, task)) in tasks.iter().enumerate() {
        let json = serde_json::to_string(task).map_err(encode("task"))?;
        sqlx::query(INSERT_TASK)
            .bind(taskset_id.to_string())
            .bind(id.clone())
            .bind(first_position + offset as i64)
            .bind(json)
            .execute(&mut *conn)
            .await
            .map_err(db("inserting a task"))?;
    }
    Ok(())
}
